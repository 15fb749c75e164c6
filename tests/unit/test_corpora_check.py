"""rules.check over the real-world corpora (tests/corpora): every file parses, findings pinned.

Each warning below was read against its SQL: all are real (a scan or rewrite under
lock on an existing table, data destroyed, rows changed without WHERE). The only
errors are the ones tests/corpora/README.md and SOURCE.md describe.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from sqlmigrate import discovery, rules
from tests.conftest import CORPORA

DEFAULT = rules.TrackingTable.parse("schema_migrations")


def check(corpus: str, table: rules.TrackingTable = DEFAULT) -> list[str]:
    base = CORPORA / corpus
    return [
        f"{f.severity.value:7} {f.rule:22} {Path(f.path).relative_to(base).as_posix()}:{f.line}:{f.col}"
        for f in rules.check(discovery.scan(base), table)
    ]


def pinned(block: str) -> list[str]:
    return [line for line in block.strip("\n").split("\n") if not line.startswith("#")]


# crates_io, default tracking table. 20170502181306_drop_schema_migrations drops
# (up) and re-creates (down) crates.io's old "schema_migrations" table: with the
# default --table that really is sqlmigrate's tracking table (README, SOURCE.md:
# run this corpus with another --table). The down.sql of
# 20240412144536_remove_downloads_column runs CREATE INDEX CONCURRENTLY without
# no-transaction (a source bug, see SOURCE.md). Warnings: CREATE INDEX without
# CONCURRENTLY, ADD COLUMN NOT NULL without DEFAULT, foreign keys and CHECKs
# without NOT VALID (also a CHECK on ADD COLUMN), ALTER COLUMN TYPE on existing
# tables; DROP TABLE/COLUMN and UPDATE without WHERE; DROP INDEX without
# CONCURRENTLY, SET NOT NULL, ADD PRIMARY KEY and UNIQUE building their index
# under lock, ADD COLUMN with random_string() (volatile) or GENERATED ... STORED
# (a rewrite), renamed columns and tables; SERIAL/INTEGER primary keys,
# TIMESTAMP without time zone, CHAR(64).
CRATES_IO = """
warning int-primary-key        20140924113530_dumped_migration_1/up.sql:1:1
warning int-primary-key        20140924114003_dumped_migration_2/up.sql:1:1
warning int-primary-key        20140924114059_dumped_migration_3/up.sql:1:1
warning unique-without-index   20140924115329_dumped_migration_4/up.sql:1:1
warning timestamp-without-time-zone 20140925132248_dumped_migration_6/up.sql:1:1
warning timestamp-without-time-zone 20140925132249_dumped_migration_7/up.sql:1:1
warning timestamp-without-time-zone 20140925132251_dumped_migration_9/up.sql:1:1
warning timestamp-without-time-zone 20140925132252_dumped_migration_10/up.sql:1:1
warning set-not-null           20140926130046_dumped_migration_19/up.sql:1:1
warning rename-table           20140926174020_dumped_migration_20/up.sql:1:1
warning rename-column          20140926174020_dumped_migration_20/up.sql:2:1
warning lock-unsafe            20140929103749_dumped_migration_21/up.sql:1:1
warning lock-unsafe            20140929103750_dumped_migration_22/up.sql:1:1
warning lock-unsafe            20140929103751_dumped_migration_23/up.sql:1:1
warning lock-unsafe            20140929103752_dumped_migration_24/up.sql:1:1
warning lock-unsafe            20140929103753_dumped_migration_25/up.sql:1:1
warning lock-unsafe            20140929103754_dumped_migration_26/up.sql:1:1
warning lock-unsafe            20140929103755_dumped_migration_27/up.sql:1:1
warning int-primary-key        20140929103756_dumped_migration_28/up.sql:1:1
warning timestamp-without-time-zone 20140929103756_dumped_migration_28/up.sql:1:1
warning lock-unsafe            20140929103757_dumped_migration_29/up.sql:1:1
warning lock-unsafe            20140929103758_dumped_migration_30/up.sql:1:1
warning int-primary-key        20140929103759_dumped_migration_31/up.sql:1:1
warning timestamp-without-time-zone 20140929103759_dumped_migration_31/up.sql:1:1
warning lock-unsafe            20140929103760_dumped_migration_32/up.sql:1:1
warning lock-unsafe            20140929103761_dumped_migration_33/up.sql:1:1
warning lock-unsafe            20140929103763_dumped_migration_34/up.sql:1:1
warning lock-unsafe            20140929185718_dumped_migration_35/up.sql:1:1
warning destructive            20140930082104_dumped_migration_36/up.sql:1:1
warning int-primary-key        20140930082105_dumped_migration_37/up.sql:1:1
warning lock-unsafe            20140930203145_dumped_migration_39/up.sql:1:1
warning lock-unsafe            20140930203146_dumped_migration_40/up.sql:1:1
warning lock-unsafe            20141001190227_dumped_migration_41/up.sql:1:1
warning lock-unsafe            20141001190229_dumped_migration_43/up.sql:1:1
warning lock-unsafe            20141002195939_dumped_migration_46/up.sql:1:1
warning lock-unsafe            20141002195941_dumped_migration_48/up.sql:1:1
warning lock-unsafe            20141002222426_dumped_migration_49/up.sql:1:1
warning lock-unsafe            20141002222427_dumped_migration_50/up.sql:1:1
warning lock-unsafe            20141002222428_dumped_migration_51/up.sql:1:1
warning lock-unsafe            20141002222429_dumped_migration_52/up.sql:1:1
warning lock-unsafe            20141002222430_dumped_migration_53/up.sql:1:1
warning lock-unsafe            20141002222431_dumped_migration_54/up.sql:1:1
warning lock-unsafe            20141002222432_dumped_migration_55/up.sql:1:1
warning lock-unsafe            20141002222433_dumped_migration_56/up.sql:1:1
warning int-primary-key        20141007131146_dumped_migration_57/up.sql:1:1
warning lock-unsafe            20141007131147_dumped_migration_58/up.sql:1:1
warning lock-unsafe            20141007131148_dumped_migration_59/up.sql:1:1
warning lock-unsafe            20141007131149_dumped_migration_60/up.sql:1:1
warning int-primary-key        20141007131735_dumped_migration_61/up.sql:1:1
warning timestamp-without-time-zone 20141007131735_dumped_migration_61/up.sql:1:1
warning lock-unsafe            20141007131736_dumped_migration_62/up.sql:1:1
warning lock-unsafe            20141007131737_dumped_migration_63/up.sql:1:1
warning lock-unsafe            20141007131738_dumped_migration_64/up.sql:1:1
warning lock-unsafe            20141007131739_dumped_migration_65/up.sql:1:1
warning lock-unsafe            20141007131740_dumped_migration_66/up.sql:1:1
warning lock-unsafe            20141007131741_dumped_migration_67/up.sql:1:1
warning timestamp-without-time-zone 20141007131741_dumped_migration_67/up.sql:1:1
warning drop-index-blocking    20141020175648_dumped_migration_74/up.sql:1:1
warning lock-unsafe            20141020175649_dumped_migration_75/up.sql:1:1
warning int-primary-key        20141021103503_dumped_migration_78/up.sql:1:1
warning timestamp-without-time-zone 20141021103503_dumped_migration_78/up.sql:1:1
warning lock-unsafe            20141021103505_dumped_migration_80/up.sql:1:1
warning lock-unsafe            20141021103506_dumped_migration_81/up.sql:1:1
warning lock-unsafe            20141021103507_dumped_migration_82/up.sql:1:1
warning lock-unsafe            20141021103508_dumped_migration_83/up.sql:1:1
warning lock-unsafe            20141021103509_dumped_migration_84/up.sql:1:1
warning lock-unsafe            20141021103510_dumped_migration_85/up.sql:1:1
warning lock-unsafe            20141121191309_dumped_migration_91/up.sql:2:1
warning unique-without-index   20150209202206_dumped_migration_92/up.sql:1:1
warning drop-index-blocking    20150319224701_dumped_migration_94/up.sql:1:1
warning lock-unsafe            20150319224701_dumped_migration_94/up.sql:2:1
warning lock-unsafe            20150320174400_dumped_migration_95/up.sql:1:1
warning int-primary-key        20150804170128_dumped_migration_98/up.sql:1:1
warning rename-column          20150804170129_dumped_migration_99/up.sql:1:1
warning unique-without-index   20150818112907_dumped_migration_101/up.sql:2:1
warning destructive            20160219125609_dumped_migration_105/up.sql:1:1
warning drop-index-blocking    20160717173343_dumped_migration_106/up.sql:1:1
warning destructive            20160717174656_dumped_migration_108/up.sql:1:1
warning lock-unsafe            20160811151954_dumped_migration_110/up.sql:1:1
warning set-not-null           20160812094501_dumped_migration_111/up.sql:1:1
warning lock-unsafe            20160812094502_dumped_migration_112/up.sql:1:1
warning int-primary-key        20161115110541_dumped_migration_113/up.sql:1:1
warning timestamp-without-time-zone 20161115110541_dumped_migration_113/up.sql:1:1
warning lock-unsafe            20161115111836_dumped_migration_115/up.sql:1:1
warning lock-unsafe            20161115111846_dumped_migration_116/up.sql:1:1
warning lock-unsafe            20161115111853_dumped_migration_117/up.sql:1:1
warning lock-unsafe            20161115111900_dumped_migration_118/up.sql:1:1
warning lock-unsafe            20170102145236_dumped_migration_121/up.sql:1:1
warning drop-index-blocking    20170304182614_make_schema_compatible_with_diesel/up.sql:1:1
warning add-primary-key        20170304182614_make_schema_compatible_with_diesel/up.sql:2:1
warning add-primary-key        20170304182614_make_schema_compatible_with_diesel/up.sql:3:1
warning add-primary-key        20170304182614_make_schema_compatible_with_diesel/up.sql:4:1
warning add-primary-key        20170304182614_make_schema_compatible_with_diesel/up.sql:5:1
warning add-primary-key        20170304182614_make_schema_compatible_with_diesel/up.sql:6:1
warning set-not-null           20170307211844_versions_yanked_is_not_nullalbe/up.sql:1:1
warning lock-unsafe            20170308140537_create_to_semver_no_prerelease/up.sql:18:1
warning destructive            20170308191449_crate_owners_does_not_need_id/up.sql:1:1
warning add-primary-key        20170308191449_crate_owners_does_not_need_id/up.sql:3:1
warning drop-index-blocking    20170308191449_crate_owners_does_not_need_id/up.sql:4:1
warning lock-unsafe            20170308191449_crate_owners_does_not_need_id/up.sql:5:1
warning drop-index-blocking    20170311180634_remove_semver_index/up.sql:1:1
warning lock-unsafe            20170312165531_index_dependencies/up.sql:1:1
warning lock-unsafe            20170315133901_make_dependencies_schema_match_use/up.sql:2:1
warning set-not-null           20170315133901_make_dependencies_schema_match_use/up.sql:2:1
warning destructive            20170318181441_downloads_need_no_id/up.sql:1:1
warning lock-unsafe            20170318181441_downloads_need_no_id/up.sql:2:1
warning add-primary-key        20170318181441_downloads_need_no_id/up.sql:3:1
warning lock-unsafe            20170322130523_version_downloads_needs_no_id/up.sql:1:1
warning lock-unsafe            20170322130523_version_downloads_needs_no_id/up.sql:2:1
warning int-primary-key        20170428154714_multiple_api_tokens/up.sql:1:1
warning timestamp-without-time-zone 20170428154714_multiple_api_tokens/up.sql:1:1
error   touches-tracking-table 20170502181306_drop_schema_migrations/down.sql:1:1
warning destructive            20170502181306_drop_schema_migrations/up.sql:1:1
error   touches-tracking-table 20170502181306_drop_schema_migrations/up.sql:1:1
warning lock-unsafe            20170708133715_ensure_crate_id_foreign_keys_cascade/up.sql:1:1
warning lock-unsafe            20170708133715_ensure_crate_id_foreign_keys_cascade/up.sql:4:1
warning lock-unsafe            20170708133715_ensure_crate_id_foreign_keys_cascade/up.sql:7:1
warning lock-unsafe            20170708133715_ensure_crate_id_foreign_keys_cascade/up.sql:10:1
warning lock-unsafe            20170708133715_ensure_crate_id_foreign_keys_cascade/up.sql:13:1
warning lock-unsafe            20170708133715_ensure_crate_id_foreign_keys_cascade/up.sql:16:1
warning lock-unsafe            20170708133715_ensure_crate_id_foreign_keys_cascade/up.sql:19:1
warning lock-unsafe            20170708135123_ensure_version_id_foreign_keys_cascade/up.sql:1:1
warning lock-unsafe            20170708135123_ensure_version_id_foreign_keys_cascade/up.sql:4:1
warning lock-unsafe            20170708135123_ensure_version_id_foreign_keys_cascade/up.sql:7:1
warning destructive            20170711193021_rerename_gitlab/up.sql:1:1
warning int-primary-key        20170804200817_add_email_table/up.sql:2:1
warning int-primary-key        20170804200817_add_email_table/up.sql:9:1
warning timestamp-without-time-zone 20170804200817_add_email_table/up.sql:9:1
warning int-primary-key        20170820180453_readme_rendering_tracking/up.sql:1:1
warning timestamp-without-time-zone 20170820180453_readme_rendering_tracking/up.sql:1:1
warning int-primary-key        20170831230457_invitations/up.sql:1:1
warning timestamp-without-time-zone 20170831230457_invitations/up.sql:1:1
warning add-column-rewrite     20170923182408_move_tokens_to_emails_table/up.sql:1:1
warning timestamp-without-time-zone 20170923182408_move_tokens_to_emails_table/up.sql:2:1
warning destructive            20170923182408_move_tokens_to_emails_table/up.sql:5:1
warning lock-unsafe            20170923191545_add_users_to_emails_foreign_key/up.sql:1:1
warning timestamp-without-time-zone 20170923210614_move_readme_rendering_onto_versions/up.sql:1:1
warning destructive            20170923210614_move_readme_rendering_onto_versions/up.sql:4:1
warning lock-unsafe            20171006234455_fix_local_dbs_unique_gh_login/up.sql:5:1
warning drop-index-blocking    20171006234455_fix_local_dbs_unique_gh_login/up.sql:7:1
warning set-not-null           20171008193512_category_trees/up.sql:13:1
warning lock-unsafe            20171008193512_category_trees/up.sql:17:1
warning lock-unsafe            20171008193512_category_trees/up.sql:18:1
warning drop-index-blocking    20171009135625_add_lower_gh_login_index/up.sql:1:1
warning lock-unsafe            20171009135625_add_lower_gh_login_index/up.sql:2:1
warning destructive            20171016200404_stop_lying_to_schema/up.sql:1:1
warning set-not-null           20171016200404_stop_lying_to_schema/up.sql:2:1
warning destructive            20171016200404_stop_lying_to_schema/up.sql:3:1
warning destructive            20171112195324_lower_teams_names/up.sql:1:1
warning lock-unsafe            20171112195324_lower_teams_names/up.sql:2:1
warning lock-unsafe            20180118172821_use_jsonb_for_features/up.sql:1:1
warning set-not-null           20180118172821_use_jsonb_for_features/up.sql:3:1
warning int-primary-key        20180118174843_create_readme_renderings/up.sql:1:1
warning timestamp-without-time-zone 20180118174843_create_readme_renderings/up.sql:1:1
warning destructive            20180118174843_create_readme_renderings/up.sql:9:1
warning lock-unsafe            20180413170549_properly_index_version_downloads/up.sql:1:1
warning drop-index-blocking    20180413170549_properly_index_version_downloads/up.sql:4:1
warning drop-index-blocking    20180427194025_remove_unused_indexes/up.sql:1:1
warning drop-index-blocking    20180427194025_remove_unused_indexes/up.sql:2:1
warning drop-index-blocking    20180427194025_remove_unused_indexes/up.sql:3:1
warning drop-index-blocking    20180427194025_remove_unused_indexes/up.sql:4:1
warning timestamp-without-time-zone 20180503150523_create_jobs/up.sql:1:1
warning lock-unsafe            20181017203221_index_crates_name/up.sql:1:1
warning lock-unsafe            20181101223239_add_published_by_to_versions/up.sql:4:1
warning int-primary-key        20190126090348_create_version_owner_actions/up.sql:1:1
warning timestamp-without-time-zone 20190126090348_create_version_owner_actions/up.sql:1:1
warning int-primary-key        20190212200540_track_version_published_by_email/up.sql:1:1
warning int-primary-key        20190318233900_create_publish_limit_buckets/up.sql:1:1
warning timestamp-without-time-zone 20190318233900_create_publish_limit_buckets/up.sql:1:1
warning destructive            20190322170700_remove_crate_downloads/up.sql:3:1
warning destructive            20190322174825_remove_version_downloads_pk/up.sql:3:1
warning int-primary-key        20190404192902_create_publish_rate_overrides/up.sql:1:1
warning destructive            20190513192055_remove_readme_from_crates/up.sql:2:1
warning lock-unsafe            20190514165316_index_crate_name_for_like/up.sql:2:1
warning lock-unsafe            20190614175833_change_keywords_to_text/up.sql:1:1
warning drop-index-blocking    20190614195059_remove_unused_indexes/up.sql:1:1
warning drop-index-blocking    20190614195059_remove_unused_indexes/up.sql:2:1
warning destructive            20190828224353_remove_licenses_column_from_crates/up.sql:3:1
warning lock-unsafe            20190915194259_add_badges_crate_id_foreign_key/up.sql:2:1
warning lock-unsafe            20190919185655_add_experimental_indexes/up.sql:7:1
warning lock-unsafe            20190919185655_add_experimental_indexes/up.sql:9:1
warning drop-index-blocking    20190919191534_remove_index_already_removed_in_prod/up.sql:1:1
warning rename-column          20191103003946_tidy_up_version_owner_actions/up.sql:4:1
warning rename-column          20191103003946_tidy_up_version_owner_actions/up.sql:8:1
warning set-not-null           20191103003946_tidy_up_version_owner_actions/up.sql:12:1
warning set-not-null           20191103003946_tidy_up_version_owner_actions/up.sql:17:1
warning destructive            20191111162609_drop_email_from_user/up.sql:1:1
warning add-column-rewrite     20191213053745_add_crate_owner_invitation_token/up.sql:1:1
warning timestamp-without-time-zone 20191213053745_add_crate_owner_invitation_token/up.sql:2:1
warning destructive            20200214183929_remove_version_authors_user_id/up.sql:1:1
warning drop-index-blocking    20200713182546_remove_api_tokens_index/up.sql:2:1
warning lock-unsafe            20200714113112_change_api_token_to_bytea/up.sql:2:1
warning lock-unsafe            20200714113112_change_api_token_to_bytea/up.sql:5:1
warning timestamp-without-time-zone 20200825101655_lock_users/up.sql:1:1
warning lock-unsafe            20210209133314_add_version_owner_actions_index/up.sql:1:1
warning destructive            20210424115720_remove_version_authors/up.sql:1:1
warning lock-unsafe            20210503174624_add_index_version_downloads_not_processed/up.sql:1:1
warning drop-index-blocking    20210505081208_recreate_version_downloads_date_index_with_brin_pages_per_range_1/up.sql:1:1
warning lock-unsafe            20210505081208_recreate_version_downloads_date_index_with_brin_pages_per_range_1/up.sql:2:1
warning timestamp-without-time-zone 20210624143712_add_publish_rate_overrides_expires_at/up.sql:1:1
warning add-primary-key        20210718125813_add_rate_limit_action/up.sql:3:1
warning add-primary-key        20210718125813_add_rate_limit_action/up.sql:7:1
warning char-type              20220814090630_checksum_column/up.sql:1:1
warning set-not-null           20220828191319_non_null_checksum/up.sql:1:1
warning timestamp-without-time-zone 20230614084044_add_token_expiry/up.sql:1:1
warning add-column-rewrite     20230813175221_faster_reverse_dependencies_query/up.sql:1:1
warning lock-unsafe            20230813175222_indexed_reverse_dependency_query/up.sql:1:1
warning lock-unsafe            20230813175222_indexed_reverse_dependency_query/up.sql:2:1
warning destructive            20240219113226_delete_badges_table/up.sql:1:1
warning int-primary-key        20240304092044_crate_downloads_table/up.sql:3:1
warning timestamp-without-time-zone 20240306123525_add_expiry_notification_at/up.sql:1:1
error   needs-no-transaction   20240412144536_remove_downloads_column/down.sql:4:1
error   needs-no-transaction   20240412144536_remove_downloads_column/down.sql:7:1
warning destructive            20240412144536_remove_downloads_column/up.sql:1:1
warning int-primary-key        20240417135931_default_versions_table/up.sql:1:1
warning destructive            20240614084455_remove_semver_no_prerelease_column/up.sql:1:1
warning set-not-null           20241024134209_make_unique_num_not_null/up.sql:1:1
warning int-primary-key        20241112125605_create_deleted_crates_table/up.sql:1:1
warning set-not-null           20241114094209_make_crate_size_not_null/up.sql:1:1
warning destructive            20250211115609_remove_token_generated_at_column/up.sql:3:1
warning set-not-null           20250211122510_not_null_expires_at_column/up.sql:1:1
warning set-not-null           20250213084853_not_null_org_id/up.sql:19:1
warning lock-unsafe            20250217133723_timezones/up.sql:3:1
warning lock-unsafe            20250217133723_timezones/up.sql:4:1
warning lock-unsafe            20250217133723_timezones/up.sql:5:1
warning lock-unsafe            20250217133723_timezones/up.sql:6:1
warning lock-unsafe            20250217133723_timezones/up.sql:8:1
warning lock-unsafe            20250217133723_timezones/up.sql:9:1
warning lock-unsafe            20250217133723_timezones/up.sql:11:1
warning lock-unsafe            20250217133723_timezones/up.sql:13:1
warning lock-unsafe            20250217133723_timezones/up.sql:15:1
warning lock-unsafe            20250217133723_timezones/up.sql:16:1
warning lock-unsafe            20250217133723_timezones/up.sql:20:1
warning lock-unsafe            20250217133723_timezones/up.sql:21:1
warning lock-unsafe            20250217133723_timezones/up.sql:30:1
warning lock-unsafe            20250217133723_timezones/up.sql:32:1
warning lock-unsafe            20250217133723_timezones/up.sql:34:1
warning lock-unsafe            20250217133723_timezones/up.sql:36:1
warning lock-unsafe            20250217133723_timezones/up.sql:38:1
warning lock-unsafe            20250217133723_timezones/up.sql:40:1
warning lock-unsafe            20250217133723_timezones/up.sql:42:1
warning lock-unsafe            20250217133723_timezones/up.sql:44:1
warning lock-unsafe            20250217133723_timezones/up.sql:45:1
warning int-primary-key        20250425090000_trusted_publishing/up.sql:1:1
warning set-not-null           20250716163013_make_gh_encrypted_token_not_null/up.sql:1:1
warning destructive            20250716170846_drop_gh_access_token/up.sql:1:1
warning int-primary-key        20250924104418_add_trustpub_configs_gitlab/up.sql:1:1
warning set-not-null           20260527120001_semver_ord_v2_not_null/up.sql:6:1
warning destructive            20260527130000_drop_semver_ord/up.sql:5:1
warning int-primary-key        20260605120000_create_reverse_dependencies/up.sql:20:1
warning set-not-null           20260606120000_make_username_not_null/up.sql:5:1
warning set-not-null           20260617105325_versions_tar_sha256_not_null/up.sql:7:1
warning destructive            20260617112535_drop_versions_checksum/up.sql:4:1
warning lock-unsafe            20260617155847_add_version_zip_checksums/up.sql:1:1
warning destructive            20260618084149_drop_users_gh_avatar/up.sql:3:1
warning destructive            20260715182934_drop_users_gh_encrypted_token/up.sql:4:1
warning destructive            20260724154000_drop_cache_tags_backfills/up.sql:2:1
"""

DOCS_RS = """
warning destructive            20240221104457_drop_releases_build_status/up.sql:1:1
warning destructive            20240221113734_drop_releases_rustc_version/up.sql:1:1
warning lock-unsafe            20240221124844_multi_stage_build_status/up.sql:7:1
warning destructive            20240227040753_add_owner_kind/up.sql:9:1
warning int-primary-key        20240311202914_release_status_materialized/up.sql:2:1
warning lock-unsafe            20240519141105_crate_version_name_field_length/up.sql:1:1
warning lock-unsafe            20240519141105_crate_version_name_field_length/up.sql:2:1
warning lock-unsafe            20240624085737_build_status_idx/up.sql:1:1
warning lock-unsafe            20241015054153_buildqueue_queue_crate_version_name_field_length/up.sql:1:1
warning lock-unsafe            20241018052241_builds_rustc_nightly_date/up.sql:4:1
warning rename-column          20241021050229_builds_started_finished/up.sql:4:1
warning lock-unsafe            20241106085600_releases_rustdoc_status_idx/up.sql:1:1
warning lock-unsafe            20241219091521_owner_avatar_longer/up.sql:1:1
warning destructive            20251202020754_remove_file_public/up.sql:1:1
warning destructive            20251202040858_remove_cdn_invalidation_queue/up.sql:1:1
warning add-primary-key        20260129171944_build_primary_key/up.sql:1:1
warning lock-unsafe            20260129171944_build_primary_key/up.sql:2:1
warning lock-unsafe            20260208042033_repositories_index_updated_/up.sql:1:1
warning lock-unsafe            20260208190819_repository_crate_count_and_index/up.sql:2:1
warning lock-unsafe            20260211013415_builds_error_kind/up.sql:2:1
warning lock-unsafe            20260416031709_builds_memory_peak/up.sql:2:1
warning lock-unsafe            20260419071012_release_license_longer/up.sql:1:1
warning destructive            20260512203454_remove_queue_registry/up.sql:1:1
warning destructive            20260811210608_remove_release_files_archive/up.sql:1:1
"""

# quickwit: 5_ and 27_ add a column with a CHECK, which scans the table to
# validate it (a column constraint cannot be NOT VALID).
QUICKWIT = """
warning lock-unsafe            10_add_split_incarnation_id/up.sql:1:1
warning lock-unsafe            10_add_split_incarnation_id/up.sql:2:1
warning lock-unsafe            10_add_split_incarnation_id/up.sql:3:1
warning lock-unsafe            10_add_split_incarnation_id/up.sql:4:1
warning timestamp-without-time-zone 11_add_split_maturity_timestamp_field/up.sql:1:1
warning lock-unsafe            14_update_shard_id/up.sql:1:1
warning set-not-null           14_update_shard_id/up.sql:1:1
warning lock-unsafe            16_create_index_split_uid/up.sql:1:1
warning lock-unsafe            17_create_index_split_timestamp/up.sql:1:1
warning lock-unsafe            17_create_index_split_timestamp/up.sql:2:1
warning drop-index-blocking    18_create_index_shard_index_uid/up.sql:1:1
warning destructive            19_add_split_node_id_field/up.sql:6:1
warning set-not-null           19_add_split_node_id_field/up.sql:11:1
warning lock-unsafe            19_add_split_node_id_field/up.sql:14:1
warning timestamp-without-time-zone 1_create_indexes/up.sql:19:1
warning destructive            20_add_shard_doc_mapping_uid_field/up.sql:6:1
warning set-not-null           20_add_shard_doc_mapping_uid_field/up.sql:11:1
warning timestamp-without-time-zone 21_add_shard_update_timestamp_field/up.sql:1:1
warning add-primary-key        22_change_splits_pkey/up.sql:1:1
warning drop-index-blocking    22_change_splits_pkey/up.sql:2:1
warning lock-unsafe            23_change_indexes_unique_index/up.sql:3:1
warning add-column-rewrite     25_add_split_size/up.sql:1:1
warning lock-unsafe            25_add_split_size/up.sql:3:1
warning timestamp-without-time-zone 26_create_metrics_splits/up.sql:4:1
warning timestamp-without-time-zone 27_add_compaction_metadata/up.sql:13:1
warning lock-unsafe            27_add_compaction_metadata/up.sql:15:1
warning lock-unsafe            27_add_compaction_metadata/up.sql:38:1
warning timestamp-without-time-zone 28_create_sketch_splits/up.sql:3:1
warning timestamp-without-time-zone 2_create_splits/up.sql:1:1
warning timestamp-without-time-zone 3_add_split_publish_timestamp_field/up.sql:1:1
warning timestamp-without-time-zone 4_create_delete_tasks/up.sql:1:1
warning lock-unsafe            5_add_delete_opstamp_splits/up.sql:1:1
warning destructive            8_delete_update_timestamp_on_indexes_table/up.sql:1:1
warning rename-column          9_add_split_incarnation_id/up.sql:1:1
warning destructive            9_add_split_incarnation_id/up.sql:3:1
warning unique-without-index   9_add_split_incarnation_id/up.sql:4:1
warning lock-unsafe            9_add_split_incarnation_id/up.sql:5:1
warning rename-column          9_add_split_incarnation_id/up.sql:8:1
warning lock-unsafe            9_add_split_incarnation_id/up.sql:9:1
warning lock-unsafe            9_add_split_incarnation_id/up.sql:10:1
warning rename-column          9_add_split_incarnation_id/up.sql:13:1
warning lock-unsafe            9_add_split_incarnation_id/up.sql:14:1
warning lock-unsafe            9_add_split_incarnation_id/up.sql:15:1
"""


@pytest.mark.parametrize("corpus, block", [("crates_io", CRATES_IO), ("docs_rs", DOCS_RS), ("quickwit", QUICKWIT)])
def test_findings_are_pinned(corpus, block):
    assert check(corpus) == pinned(block)


def test_crates_io_errors_with_the_default_table():
    errors = [line for line in check("crates_io") if line.startswith("error")]
    assert errors == [
        "error   touches-tracking-table 20170502181306_drop_schema_migrations/down.sql:1:1",
        "error   touches-tracking-table 20170502181306_drop_schema_migrations/up.sql:1:1",
        "error   needs-no-transaction   20240412144536_remove_downloads_column/down.sql:4:1",
        "error   needs-no-transaction   20240412144536_remove_downloads_column/down.sql:7:1",
    ]


def test_crates_io_with_another_table_has_only_the_needs_no_transaction_error():
    other = check("crates_io", rules.TrackingTable.parse("other_table"))
    assert [line for line in other if line.startswith("error")] == [
        "error   needs-no-transaction   20240412144536_remove_downloads_column/down.sql:4:1",
        "error   needs-no-transaction   20240412144536_remove_downloads_column/down.sql:7:1",
    ]
    assert [line for line in other if line.startswith("warning")] == [
        line for line in pinned(CRATES_IO) if line.startswith("warning")
    ]


@pytest.mark.parametrize("corpus", ["docs_rs", "quickwit"])
def test_no_errors(corpus):
    assert [line for line in check(corpus) if line.startswith("error")] == []


@pytest.mark.parametrize(
    "corpus, migrations, up_statements, down_statements",
    # the statement counts of each SOURCE.md ("split on ';' outside quotes,
    # dollar quotes and comments")
    [("crates_io", 285, 620, 481), ("docs_rs", 33, 136, 82), ("quickwit", 29, 97, 85)],
)
def test_every_file_parses(corpus, migrations, up_statements, down_statements):
    scan = discovery.scan(CORPORA / corpus)
    assert len(scan.migrations) == migrations
    ups = [rules.parse(m.up) for m in scan.migrations]
    downs = [rules.parse(m.down) for m in scan.migrations]
    assert all(sql is not None and sql.problems == () for sql in ups + downs)
    assert sum(len(sql.statements) for sql in ups) == up_statements
    assert sum(len(sql.statements) for sql in downs) == down_statements


def test_dollar_quotes_in_comments_do_not_open_a_body():
    # quickwit 26: "-- Query pattern: $$cpu.usage$$ = ANY(metric_names)"
    scan = discovery.scan(CORPORA / "quickwit")
    sql = rules.parse(scan.by_number()[26].up)
    assert [s.line for s in sql.statements] == [4, 48, 52, 56, 57, 58, 59, 60]


def test_concurrently_inside_a_function_body_is_not_top_level():
    # crates_io: REFRESH MATERIALIZED VIEW CONCURRENTLY inside an SQL function
    scan = discovery.scan(CORPORA / "crates_io")
    migration = scan.by_number()[20180424145128]
    assert rules.check_migration(migration, DEFAULT) == []  # its index is on a view it creates
