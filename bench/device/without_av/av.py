"""Stands in for PyAV in the dry run (`bench/device/run.sh --dry` puts this folder first on PYTHONPATH): the
GPU machine has no PyAV, so importing it must fail here too, to show that data prep of images never needs it."""

raise ImportError("PyAV is blocked for the GPU check's dry run: the GPU machine does not have it")
