"""Datasets as they come from the official downloads, and the papers' split protocols.

Every loader yields lightweight :class:`Record` objects (paths + metadata); pixels are
read only when :meth:`Record.load` is called, so iterating a dataset costs nothing.
"""
from nuclei_tf.data.dsb import DSB2018
from nuclei_tf.data.errors import DataError
from nuclei_tf.data.folder import InstanceFolder
from nuclei_tf.data.monuseg import MoNuSeg
from nuclei_tf.data.protocols import PROTOCOLS, get_protocol, split_protocol
from nuclei_tf.data.record import Record, Sample
from nuclei_tf.data.tnbc import TNBC

__all__ = [
    "DSB2018",
    "DataError",
    "InstanceFolder",
    "MoNuSeg",
    "PROTOCOLS",
    "Record",
    "Sample",
    "TNBC",
    "get_protocol",
    "split_protocol",
]
