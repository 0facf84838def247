from ponder.cli.app import main

main()
