import sys

from delivery.demo.flow import main

sys.exit(main())
