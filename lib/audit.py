"""`python -m lib.audit verify|show`: check or read the audit chain (lib/security/audit.py)."""
import sys

from lib.security.audit import main

if __name__ == "__main__":
    sys.exit(main())
