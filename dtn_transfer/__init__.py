"""dtn-transfer: move large data sets between DTN clusters with globus-url-copy.

Plan → schedule → execute → verify, with live state that the hpcdtn PCP agent serves.
"""
