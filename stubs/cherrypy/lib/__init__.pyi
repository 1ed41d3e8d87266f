from . import sessions as sessions
