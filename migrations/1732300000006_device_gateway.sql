-- Up Migration
-- Devices on HTTP (DeviceGatewayService.PollDownlink): until when the device's open long poll
-- listens for tasks. NULL when no poll is open. Shown as Device.connectivity.listen_until_time.
ALTER TABLE devices ADD COLUMN listen_until_time timestamptz;

-- Down Migration
ALTER TABLE devices DROP COLUMN listen_until_time;
