from visor.cli import main

main()
