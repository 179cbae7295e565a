"""The demo page: its static files and the Starlette app that mounts them at /ui."""
