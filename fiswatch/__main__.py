from fiswatch.cli import main

main()
