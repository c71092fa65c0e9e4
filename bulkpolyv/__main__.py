"""``python -m bulkpolyv``."""

from bulkpolyv.cli import main

main()
