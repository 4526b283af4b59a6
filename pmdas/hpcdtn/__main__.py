"""hpcdtn: PCP agent for dtn-transfer runs and GridFTP server transfer logs (hpc.dtn.*)."""
from pmdas.common.pmda import main

from .collector import DtnAgent

main(DtnAgent)
