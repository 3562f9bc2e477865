"""Recycling conveyor cell: MuJoCo simulation (embedded default), Gazebo world generation, lighting domains, scripted expert, recording and scoring."""
