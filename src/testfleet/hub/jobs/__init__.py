"""Jobs on the hub: the API's service, the scheduler that claims them, and their runners."""
