"""Speech to commands, ROS-free: audio framing, voice activity, the grammar, the stop policy and
the pocketsphinx recogniser (imported only where it runs, so `--help` stays instant)."""
