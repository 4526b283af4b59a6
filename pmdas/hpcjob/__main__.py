"""Run the hpcjob agent under pmcd."""
from pmdas.common.pmda import main

from .collector import JobAgent

main(JobAgent)
