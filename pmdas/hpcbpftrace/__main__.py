from pmdas.common.pmda import main

from .collector import BpftraceAgent

main(BpftraceAgent)
