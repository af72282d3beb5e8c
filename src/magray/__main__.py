from magray.cli.main import main

main()
