from glyphgate.cli import main

raise SystemExit(main())
