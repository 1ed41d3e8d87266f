from . import plugins as plugins
from . import wspbus as wspbus
