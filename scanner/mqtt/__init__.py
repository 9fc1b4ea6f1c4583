"""MQTT between sensor nodes, gate cores and the command post.

``link`` holds how to reach the broker (address, TLS, credentials) and opens paho-mqtt clients
with persistent sessions; ``topics`` names every topic, so publishers and subscribers agree in one
place. The broker (Mosquitto) does the buffering, ordering and fan-out; nothing here replicates.
"""
