"""A Spin MQTT-trigger app (spin-sdk 3.4.1, componentize-py 0.17.2; world spin-mqtt-app in
mqtt-trigger-app.wit: spin-trigger-mqtt's `handle-message` export plus Spin's imports).

Each message is inserted, with its topic, into the default SQLite database; the payload "fail"
makes the handler return its error value.
"""

from spin_sdk.wit.imports import fermyon_spin_sqlite as sq
from spin_sdk.wit.imports import spin_mqtt_types
from spin_sdk.wit.types import Err


class SpinSdkWit:  # the world's own exports: componentize-py looks this class up by name
    def handle_message(self, message: bytes, metadata: spin_mqtt_types.Metadata) -> None:
        if message == b"fail":
            raise Err(spin_mqtt_types.Error_Other("asked to fail"))
        print(f"mqtt message {message!r} on {metadata.topic}")
        with sq.Connection.open("default") as db:
            db.execute("CREATE TABLE IF NOT EXISTS messages (topic TEXT, m BLOB)", [])
            db.execute("INSERT INTO messages VALUES (?, ?)",
                       [sq.Value_Text(metadata.topic), sq.Value_Blob(message)])
