"""The municipality's adapter: the payer's part (iWmo claims) plus its part in the chain."""
