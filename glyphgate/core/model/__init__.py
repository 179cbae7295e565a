"""The network, its training modes, and SGLD sampling: shared by training, export and the generator."""
