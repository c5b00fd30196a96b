"""The twin's side of carbon accounting: an event log's meters through ``carbon``, machine time and
output per product, and the emissions report of a stored period."""
