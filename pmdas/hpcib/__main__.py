"""Run the hpcib agent under pmcd."""
from pmdas.common.pmda import main

from .collector import InfinibandAgent

main(InfinibandAgent)
