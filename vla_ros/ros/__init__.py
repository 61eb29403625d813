"""ROS glue shared by the nodes: parameters, diagnostics, QoS, message conversion, main()."""
