"""`python -m lib.ingest FILE... --out DIR`: ingest extracts into a canonical dataset folder."""
import sys

from lib.ingest.pipeline import main

sys.exit(main())
