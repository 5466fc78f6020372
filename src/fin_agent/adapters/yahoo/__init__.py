"""Yahoo: daily bars from the chart endpoint."""
