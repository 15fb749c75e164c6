DROP TABLE billing_info;
DROP TABLE user_preferences;
DROP TABLE api_keys;
DROP TABLE users;
