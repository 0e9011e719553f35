-- iOS through FCM (issue 16): an FCM subscription's platform, which decides its message's delivery
-- options (Android's `android` block, or APNs's `apns` block). A column is added, nothing is
-- rebuilt, so no row is lost and no foreign key cascades. NULL on every other transport.
ALTER TABLE subscriptions ADD COLUMN platform TEXT CHECK (platform IN ('android', 'ios'));
-- Every FCM token registered so far was an Android app's.
UPDATE subscriptions SET platform = 'android' WHERE transport = 'fcm' AND platform IS NULL;
