"""voip-summit owns the Summit integration, number ranges, the catalogue (partitions, categories,
licences, cost centres), SIP lines and DIDs."""
