ALTER TABLE api_keys DROP COLUMN usage_count;
DROP TABLE usage_tracking;
