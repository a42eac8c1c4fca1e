import sys

from demo.flow import main

sys.exit(main())
