"""Read run folders and turn them into tables, plots and paired comparisons (`alm-bench report`)."""
