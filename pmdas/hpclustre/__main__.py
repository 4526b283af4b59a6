from pmdas.common.pmda import main

from .collector import LustreAgent

main(LustreAgent)
