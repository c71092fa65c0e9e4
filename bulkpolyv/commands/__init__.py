"""The commands of ``bulkpolyv``, one module per group; :mod:`bulkpolyv.cli` lists them."""
