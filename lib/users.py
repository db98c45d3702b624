"""`python -m lib.users add|remove|list ...`: manage the users file (lib/security/users.py)."""
import sys

from lib.security.users import main

if __name__ == "__main__":
    sys.exit(main())
