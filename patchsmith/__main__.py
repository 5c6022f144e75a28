from patchsmith.cli import main

raise SystemExit(main())
