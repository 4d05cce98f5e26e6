from costlake.cli import main

main()
