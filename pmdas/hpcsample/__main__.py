from pmdas.common.pmda import main

from .collector import SampleAgent

main(SampleAgent)
