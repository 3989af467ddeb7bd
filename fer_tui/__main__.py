from fer_tui.cli import main

raise SystemExit(main())
