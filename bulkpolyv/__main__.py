"""``python -m bulkpolyv``."""

from bulkpolyv.entry import main

main()
