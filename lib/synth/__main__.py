"""`python -m lib.synth --reports N --seed S --out DIR`: write a synthetic dataset."""
from lib.synth.generator import main

raise SystemExit(main())
