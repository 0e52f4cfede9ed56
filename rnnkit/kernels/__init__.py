"""Fast paths for the recurrence, each tested equal to the reference loop in rnnkit/recurrent.py."""
