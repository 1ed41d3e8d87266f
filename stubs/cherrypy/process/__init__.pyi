from . import plugins as plugins, wspbus as wspbus
