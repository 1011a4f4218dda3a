from rlbandit.cli import main

main()
