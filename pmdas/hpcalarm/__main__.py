"""Run the hpcalarm agent under pmcd."""
from pmdas.common.pmda import main

from .collector import AlarmAgent

main(AlarmAgent)
