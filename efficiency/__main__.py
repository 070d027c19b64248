import sys

from efficiency.cli.main import main

if __name__ == "__main__":  # the runner's forkserver imports the main module as __mp_main__
    sys.exit(main())
