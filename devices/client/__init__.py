"""The reference device client: streams a file or a microphone to the ingest WebSocket.

Needs only websockets, numpy and soundfile (sounddevice for ``--mic``): no Django, no torch.
"""
