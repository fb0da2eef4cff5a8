"""The writing app's behaviour, one concern per module, as mixins of :class:`tui.app.QuillmateApp`."""
