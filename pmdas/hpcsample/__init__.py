"""hpcsample: the reference agent.  It shows the four layers on the simplest source
(a directory of small value files, plus an optional command) and is what the
framework's own tests install into pmcd.  Metrics under hpc.sample.*."""
