"""Static cost counters: parameters, FLOPs by three counters, memory traffic. No real weights allocated."""
