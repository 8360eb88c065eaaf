"""Code shared by the benchmark projects of every system (fastq and its peers).

Standard library only: it is imported both from the fastq virtualenv and from the peers'
virtualenv (benchmarks/.peers). Each project implements :class:`ops.Adapter` in its
``manage.py bench`` command and hands it to :func:`ops.main`.
"""
